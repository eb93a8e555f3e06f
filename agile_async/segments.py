"""How many SMS parts a text costs, where it splits, and what a campaign will cost.

Pure functions, no I/O. The rules are those of 3GPP TS 23.038/23.040 as handsets apply
them, matched to Twilio's public Message Segment Calculator 1.3.0, the published reference
our counts are checked against:

- A text is GSM-7 if every character is in the GSM 03.38 basic or extension table,
  otherwise the *whole* text is UCS-2: one ``°`` or emoji cuts a part from 160 to 70.
- One part holds 140 octets: 160 septets, 70 UTF-16 code units or 140 bytes. A longer text
  goes in parts that each carry a 6-octet concatenation header: 153, 67 or 134 each.
- Parts are filled greedily and an *atom* never straddles two parts: a GSM escape pair
  (``€`` costs 2 septets), a surrogate pair, a whole grapheme cluster (``👍🏽``, ``🇮🇹``,
  ``e`` + a combining accent). So ``"a" * 152 + "€" + "a" * 152`` is 3 parts, not 2.
- Empty text is one GSM-7 part.

```python
from agile_async.segments import count_parts, count_segments, split_segments

count = count_segments("Domani 38°C")
count.encoding, count.segments, count.units   # ('UCS-2', 1, 11)
count.non_gsm_characters                       # ('°',)
[len(part) for part in split_segments("a" * 200)]   # [153, 47]
parts, encoding = count_parts("Domani 38°C")   # (1, 'UCS-2'): the same count, faster
```

:func:`count_parts` answers only the number of parts and the encoding, without building a
:class:`SegmentCount`, for code that needs nothing else (pricing, rate limits, dry runs); it
agrees with :func:`count_segments` on every input.

Costs: :class:`PriceList` (per-part prices by destination prefix) and
:func:`estimate_cost` / :func:`iter_estimates` / :func:`estimate_message`.
"""

from __future__ import annotations

from ._counting import (
    MAX_PARTS,
    Encoding,
    PartCount,
    SegmentCount,
    body_problems,
    count_hex_segments,
    count_parts,
    count_segments,
    part_capacity,
    split_segments,
)
from ._pricing import (
    CostEstimate,
    EstimateInput,
    MessageEstimate,
    MessageLike,
    PriceList,
    estimate_cost,
    estimate_message,
    iter_estimates,
)
from ._public import claim_public_names

__all__ = [
    "MAX_PARTS",
    "CostEstimate",
    "Encoding",
    "EstimateInput",
    "MessageEstimate",
    "MessageLike",
    "PartCount",
    "PriceList",
    "SegmentCount",
    "body_problems",
    "count_hex_segments",
    "count_parts",
    "count_segments",
    "estimate_cost",
    "estimate_message",
    "iter_estimates",
    "part_capacity",
    "split_segments",
]

claim_public_names(__name__)
