"""``agile_async.campaigns`` is public: its names are a contract, pinned here."""

from __future__ import annotations

import agile_async.campaigns as campaigns

EXPECTED = {
    "CONFIRMED_BY_REPORT",
    "EXPORT_COLUMNS",
    "BodyTemplate",
    "Campaign",
    "CampaignDefinition",
    "CampaignError",
    "CampaignProgress",
    "CampaignReport",
    "CampaignResult",
    "CampaignStatus",
    "DeliveryState",
    "DeliveryUpdate",
    "Failure",
    "InputChangedError",
    "InputFormat",
    "Journal",
    "JournalError",
    "JournalRow",
    "LoadProgress",
    "LoadState",
    "LoadedRow",
    "OutgoingRow",
    "Recovery",
    "RowState",
    "SQLiteJournal",
    "StateCounts",
    "Tally",
    "TemplateError",
}


def test_public_names() -> None:
    """Exactly these, sorted, each importable."""
    assert set(campaigns.__all__) == EXPECTED
    assert campaigns.__all__ == sorted(campaigns.__all__, key=lambda n: (not n.isupper(), n))
    for name in campaigns.__all__:
        assert getattr(campaigns, name) is not None


def test_classes_say_where_they_live() -> None:
    """Reprs and docs show the public path, not the private module."""
    for name in campaigns.__all__:
        obj = getattr(campaigns, name)
        if isinstance(obj, type):
            assert obj.__module__ == "agile_async.campaigns", name


def test_errors_are_agile_errors() -> None:
    """One ``except AgileError`` catches campaign problems too."""
    from agile_async import AgileError

    for error in (campaigns.CampaignError, campaigns.JournalError, campaigns.InputChangedError,
                  campaigns.TemplateError):  # fmt: skip
        assert issubclass(error, AgileError)
