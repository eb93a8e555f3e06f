"""The campaign engine's implementation; the public names live in :mod:`agile_async.campaigns`.

```
_journal.py  the journal contract: row states, records, the Journal protocol
_sqlite.py   the embedded SQLite journal (the default backend)
_input.py    streaming CSV/JSONL reading, body templates, per-row checks
_setup.py    what is checked before a campaign is recorded; finding its journal
_runner.py   one run: pending rows into the Batcher, outcomes into the journal
_report.py   the dry-run report, progress snapshots, a run's result, the status
_export.py   outcomes to CSV
_engine.py   Campaign: the façade over all of the above
```
"""
