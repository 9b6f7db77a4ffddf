"""Roster files for the tests: generated people in Chinese characters, pinyin and Cyrillic."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

SURNAMES = [
    ("张", "Zhang"),
    ("王", "Wang"),
    ("李", "Li"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
]
GIVEN = [
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("小明", "Xiaoming"),
    ("静", "Jing"),
    ("丽", "Li"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("洋", "Yang"),
]
CHINESE_HEADER = ["编号", "姓名", "拼音", "性别", "出生日期", "护照号码", "电话", "分组"]


def person(i: int, group: str = "Bus 1") -> list[str]:
    """Row ``i`` of a roster with Chinese headers (all values distinct per ``i``)."""
    (fam, fam_py), (giv, giv_py) = SURNAMES[i % len(SURNAMES)], GIVEN[i % len(GIVEN)]
    return [
        f"S{i:05d}",
        fam + giv,
        f"{fam_py.upper()} {giv_py}",
        "男" if i % 2 else "女",
        f"{1995 + i % 10}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        f"E{10000000 + i}",
        f"+86 138 {i:08d}",
        group,
    ]


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[Any]],
    encoding: str = "utf-8-sig",
    delimiter: str = ",",
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def roster_rows(n: int, group: str = "Bus 1") -> list[list[str]]:
    return [person(i, group) for i in range(n)]
