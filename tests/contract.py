"""Facts of the process contract (docs/processes.md §4) that tests at more than one level check, written once."""

from __future__ import annotations

# The sanction ladder, mildest first (责令公开道歉 < 停职检查 < 引咎辞职 < 责令辞职 < 免职).
LADDER = ["public_apology", "suspension", "resign_voluntarily", "ordered_resignation", "removal"]
# The sanctions that end the cadre's post, and so open a departure audit ("先审计，后离任").
LEAVES_POST = ("resign_voluntarily", "ordered_resignation", "removal")
# The DMN `sanction_ladder`: (circumstance, loss, the sanction it proposes).
SANCTION_TABLE = [
    ("minor", "none", "public_apology"),
    ("minor", "major", "suspension"),
    ("minor", "severe", "suspension"),
    ("serious", "none", "suspension"),
    ("serious", "major", "resign_voluntarily"),
    ("serious", "severe", "ordered_resignation"),
    ("grave", "none", "ordered_resignation"),
    ("grave", "major", "ordered_resignation"),
    ("grave", "severe", "removal"),
]
