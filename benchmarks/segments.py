"""How fast are ``count_parts`` and ``count_segments``, and do they agree with smsutil?

Runs ``agile_async.segments.count_parts``, ``agile_async.segments.count_segments`` and
``smsutil.split`` side by side on the same generated corpus, in the same process, taking
turns within each round, and prints one table: texts per second for each, each of ours as a
multiple of smsutil's, and how often ours and smsutil agree on (encoding, parts). The
targets (issue 13) are printed under the table: ``count_parts`` at least 25x
``smsutil.split`` on the whole corpus, ``count_segments`` at least 15x.

SEGMENTS.md §9 lists where smsutil does not follow the rules: empty text (it says UCS-2),
a literal ESC (U+001B, GSM to it) and grapheme clusters (it keeps only code points whole).
Disagreements are counted in those classes; any other disagreement is a bug in one of the two
and is listed.

The corpus is synthetic but shaped like an Italian SMS provider's traffic: mostly GSM-7
notifications and marketing, then UCS-2 Italian (a typographic apostrophe or ``°`` is enough),
other scripts, emoji, and a few edge cases. It is generated from a fixed seed, so every run
counts the same texts.

    python benchmarks/segments.py [--texts 3000] [--repeat 7] [--seed 20240601]
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

import smsutil

from agile_async._graphemes import clusters
from agile_async.segments import count_parts, count_segments

_GSM_SHORT = (
    "Il tuo codice di verifica è {n}. Non condividerlo con nessuno.",
    "Your verification code is {n}",
    "Promemoria: appuntamento domani alle {h}:{m} presso lo studio. Per disdire rispondi NO.",
    "Il pacco {n} è in consegna oggi tra le {h}:00 e le {h2}:00.",
    "Codice OTP: {n}. Valido 5 minuti.",
    "Ciao! Il tuo ordine #{n} è stato spedito.",
    "Hi, your table for {h} at {h}:{m} is confirmed. Reply C to cancel.",
    "Bonifico di {eur} EUR eseguito. Saldo disponibile: {eur2} EUR.",
)
_GSM_LONG = (
    "Gentile cliente, la informiamo che dal {d}/{mo} la sua tariffa cambierà. "
    "Per maggiori informazioni visiti il sito o chiami il numero verde 800 {n}. ",
    "Offerta speciale: sconto del {p}% fino a {eur}€ su tutti i prodotti {{codice: ESTATE{n}}}. "
    "Valida fino al {d}/{mo}. ",
    "Dear customer, your subscription renews on {d}/{mo}. To change your plan visit "
    "example.com/account or reply STOP to opt out of messages. ",
    "Comune di Bologna: causa lavori, via Indipendenza chiusa dal {d}/{mo} alle ore {h}:{m}. "
    "Percorsi alternativi [linee 11, 27] attivi. ",
    "Sehr geehrte Kundin, Ihr Termin am {d}.{mo}. um {h}:{m} Uhr ist bestätigt. ",
)
_UCS2_ITALIAN = (
    "L’ordine {n} è pronto: ritiralo entro venerdì. Temperatura di conservazione 4°C.",
    "ATTENZIONE: domani temperature fino a 38°C. Rimani a casa nelle ore più calde e bevi "
    "molta acqua.",
    "È arrivato il momento dei saldi! Fino al {p}% di sconto… solo per te.",
    "«Grazie per averci scelto» – il team. Vota la tua esperienza da 1 a 5.",
    "Perché aspettare? L’iscrizione chiude il {d}/{mo}: più {p} posti disponibili.",
)
_UCS2_SCRIPTS = (
    "Ваш код подтверждения: {n}. Никому не сообщайте его.",
    "Привет! Ваш заказ №{n} отправлен и будет доставлен завтра. Спасибо, что выбрали нас!",
    "Ο κωδικός σας είναι {n}. Ισχύει για 10 λεπτά.",
    "您的验证码是{n}，请勿泄露给他人。感谢您使用我们的服务！",
    "رمز التحقق الخاص بك هو {n}. لا تشاركه مع أي شخص.",
    "Mã xác nhận của bạn là {n}. Vui lòng không chia sẻ.",
)
_UCS2_EMOJI = (
    "Great news 🎉 your order {n} has shipped! Track it here 👉 https://ex.am/{n}",
    "Buon compleanno! 🎂🎈 Per te un buono da {eur}€ ❤️",
    "Saldi estivi ☀️🏖️ fino al {p}% su tutto! 🇮🇹",
    "Grazie 👍🏽 ci vediamo il {d}/{mo} 😀",
    "👨‍👩‍👧‍👦 Family pack: 4 biglietti a {eur}€! 🎟️",
)
_EDGE = (
    "",
    "\x1b",
    "Line one\r\nLine two\r\nLine three {n}",
    "आपका ओटीपी {n} है। कृपया इसे किसी के साथ साझा न करें।",
    "รหัสยืนยันของคุณคือ {n} กรุณาอย่าเปิดเผย",
    "Prezzo: {eur}€\tIVA inclusa",
)

#: (name, templates, share of the corpus, how many templates one text chains together).
_CATEGORIES: tuple[tuple[str, tuple[str, ...], float, tuple[int, int]], ...] = (
    ("GSM-7, short", _GSM_SHORT, 0.35, (1, 1)),
    ("GSM-7, long", _GSM_LONG, 0.25, (1, 4)),
    ("UCS-2, Italian", _UCS2_ITALIAN, 0.12, (1, 3)),
    ("UCS-2, other scripts", _UCS2_SCRIPTS, 0.10, (1, 3)),
    ("UCS-2, emoji", _UCS2_EMOJI, 0.13, (1, 3)),
    ("edge cases", _EDGE, 0.05, (1, 2)),
)


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        n=rng.randint(1000, 999999),
        h=rng.randint(8, 19),
        h2=rng.randint(10, 21),
        m=f"{rng.choice((0, 15, 30, 45)):02d}",
        d=rng.randint(1, 28),
        mo=rng.randint(1, 12),
        p=rng.choice((10, 20, 30, 50, 70)),
        eur=f"{rng.randint(5, 500)},{rng.randint(0, 99):02d}",
        eur2=f"{rng.randint(100, 9000)},{rng.randint(0, 99):02d}",
    )


def make_corpus(size: int, seed: int) -> list[tuple[str, str]]:
    """``size`` (category, text) pairs, the same for the same seed."""
    rng = random.Random(seed)
    corpus = []
    for name, templates, share, (low, high) in _CATEGORIES:
        for _ in range(round(size * share)):
            chained = rng.randint(low, high)
            corpus.append(
                (name, " ".join(_fill(rng.choice(templates), rng) for _ in range(chained)))
            )
    rng.shuffle(corpus)
    return corpus


def _best_times(
    functions: Sequence[Callable[[str], Any]], texts: Sequence[str], repeat: int
) -> list[float]:
    """The best of ``repeat`` timings of each function over ``texts``.

    The functions take turns within each round, so a slow moment of a shared machine falls on
    all of them rather than on one, and the time is the process's CPU time, so the time this
    process spends waiting for a core another process holds is not counted. Each round
    starts with the next function: the first to run after another has been through the
    corpus pays for its cold caches (10-15% here), and it is not always the same one.
    """
    best = [float("inf")] * len(functions)
    for round_ in range(repeat):
        for turn in range(len(functions)):
            i = (round_ + turn) % len(functions)
            function = functions[i]
            start = time.process_time()
            for text in texts:
                function(text)
            best[i] = min(best[i], time.process_time() - start)
    return best


#: What the issue asks: (function, at least this multiple of smsutil.split on "all").
_TARGETS = (("count_parts", 25.0), ("count_segments", 15.0))


def _ours(text: str) -> tuple[str, int]:
    count = count_segments(text)
    parts, encoding = count_parts(text)
    if (parts, encoding) != (count.segments, count.encoding):  # the property test's promise
        raise AssertionError(f"count_parts and count_segments disagree on {text!r}")
    return count.encoding, count.segments


def _smsutil(text: str) -> tuple[str, int]:
    result = smsutil.split(text)
    encoding = "GSM-7" if result.encoding == "gsm0338" else "UCS-2"
    return encoding, len(result.parts)


def _why_smsutil_differs(text: str) -> str | None:
    """The SEGMENTS.md §9 class that explains a disagreement, or None."""
    if not text:
        return "empty text"
    if "\x1b" in text:
        return "U+001B"
    ends, _ = clusters(text)
    if len(ends) < len(text):  # some cluster has several code points
        return "grapheme clusters"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--texts", type=int, default=3000, help="corpus size (default 3000)")
    parser.add_argument("--repeat", type=int, default=7, help="timing runs, best kept")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args(argv)

    corpus = make_corpus(args.texts, args.seed)
    groups: dict[str, list[str]] = {}
    for name, text in corpus:
        groups.setdefault(name, []).append(text)
    groups["all"] = [text for _, text in corpus]

    print(
        f"Python {platform.python_version()} ({platform.machine()}), "
        f"smsutil {metadata.version('smsutil')}; {len(corpus)} texts (seed {args.seed}), "
        f"best of {args.repeat} runs (CPU time)\n"
    )
    header = (
        f"{'corpus':<22} {'texts':>6} {'count_parts/s':>14} {'count_segments/s':>17} "
        f"{'smsutil.split/s':>16} {'parts ratio':>12} {'segments ratio':>15} {'agree':>6} "
        f"{'differ (§9)':>12} {'differ (other)':>15}"
    )
    print(header)
    print("-" * len(header))
    unexplained: list[tuple[str, tuple[str, int], tuple[str, int]]] = []
    reasons: dict[str, int] = {}
    ratios: dict[str, float] = {}
    for name, texts in groups.items():
        parts, ours, theirs = _best_times(
            (count_parts, count_segments, smsutil.split), texts, args.repeat
        )
        agree = explained = other = 0
        for text in texts:
            a, b = _ours(text), _smsutil(text)
            if a == b:
                agree += 1
                continue
            reason = _why_smsutil_differs(text)
            if reason is None:
                other += 1
                if name != "all":
                    unexplained.append((text, a, b))
            else:
                explained += 1
                if name == "all":
                    reasons[reason] = reasons.get(reason, 0) + 1
        if name == "all":
            ratios = {"count_parts": theirs / parts, "count_segments": theirs / ours}
        print(
            f"{name:<22} {len(texts):>6} {len(texts) / parts:>14,.0f} {len(texts) / ours:>17,.0f} "
            f"{len(texts) / theirs:>16,.0f} {theirs / parts:>11.1f}x {theirs / ours:>14.1f}x "
            f"{agree:>6} {explained:>12} {other:>15}"
        )
    print()
    for function, target in _TARGETS:
        verdict = "met" if ratios[function] >= target else "NOT met"
        print(
            f"{function}: {ratios[function]:.1f}x smsutil.split on all texts "
            f"(target {target:.0f}x: {verdict})"
        )
    print()
    print("smsutil differs, as SEGMENTS.md §9 says it does:", reasons or "never")
    for text, a, b in unexplained[:10]:
        print(f"UNEXPLAINED: {text!r}: count_segments {a}, smsutil {b}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
