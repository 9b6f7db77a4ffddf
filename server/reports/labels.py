"""Bilingual labels (English, Simplified Chinese) shared by the PDF and HTML reports."""

from __future__ import annotations

#: key -> (English, Simplified Chinese)
LABELS: dict[str, tuple[str, str]] = {
    "title": ("Nightly headcount report", "每晚人数报告"),
    "operation": ("Operation", "行动"),
    "night": ("Night of", "日期"),
    "cutoff": ("Generated for cut-off", "统计截止时间"),
    "previous_cutoff": ("Previous cut-off", "上次截止时间"),
    "totals": ("Totals by state", "按状态统计"),
    "records": ("Records", "记录数"),
    "expected": ("Expected", "应到人数"),
    "accounted": ("Accounted for", "已确认下落"),
    "unaccounted": ("Not accounted for", "下落不明"),
    "planned": ("Planned", "计划人数"),
    "groups": ("Groups: expected and accounted for", "各组：应到与已确认"),
    "group": ("Group", "组"),
    "by_checkpoint": ("Accounted for, by last checkpoint", "已确认人员（按最后检查点）"),
    "no_group": ("No group (walk-ins)", "无组（现场登记）"),
    "changes": ("Changes since the previous report", "与上次报告相比的变化"),
    "arrived_change": ("Arrived", "已抵达"),
    "newly_missing": ("Newly missing", "新增失踪"),
    "found": ("Found", "已找到"),
    "assistance": ("People needing assistance", "需要协助的人员"),
    "missing_people": ("People not accounted for", "下落不明人员"),
    "unseen_groups": (
        "Not listed by name: {people} people not seen in {groups} groups of which no one has "
        "been seen at a checkpoint yet (people-RESTRICTED.csv lists everyone).",
        "未逐一列出：{groups}个组尚无任何人在检查点出现，其中未见到的{people}人"
        "（people-RESTRICTED.csv 列出所有人）。",
    ),
    "name": ("Name", "姓名"),
    "state": ("State", "状态"),
    "last_checkpoint": ("Last checkpoint", "最后检查点"),
    "last_seen": ("Last seen", "最后见到"),
    "flags": ("Flags", "标记"),
    "discrepancies": ("Open discrepancies", "未解决的差异"),
    "kind": ("Kind", "类型"),
    "count": ("Count", "数量"),
    "late": ("Late records", "迟到记录"),
    "late_note": (
        "Captured before the previous cut-off but received after it.",
        "在上次截止前采集、但在其后才收到的记录。",
    ),
    "captured": ("Captured", "采集时间"),
    "received": ("Received", "收到时间"),
    "device": ("Device", "设备"),
    "reported": ("Reported", "上次报告"),
    "corrected": ("With late records", "计入迟到记录后"),
    "silent": ("Devices silent, unknown data at risk", "长时间未同步的设备（数据可能缺失）"),
    "silent_note": (
        "No contact for more than {hours} hours before the cut-off.",
        "截止前超过{hours}小时未联系。",
    ),
    "last_contact": ("Last contact", "最后联系"),
    "hours": ("Hours silent", "静默小时数"),
    "received_events": ("Records received", "已收到记录"),
    "history": ("Numbers over the operation's days", "行动期间的人数变化"),
    "none": ("None", "无"),
    "first_night": ("First night of the operation: no earlier report.", "行动第一晚：无上次报告。"),
    "page": ("Page", "页"),
    "caveat": (
        "Counts use only records received before the cut-off. Names and group details are as "
        "of the time the report was made.",
        "统计仅包括截止时间前收到的记录。姓名和组信息以生成报告时为准。",
    ),
    "late_change": ("Accounted for at the previous cut-off", "上次截止时已确认人数"),
}

STATE_LABELS: dict[str, tuple[str, str]] = {
    "checked_in": ("Checked in", "已签到"),
    "arrived": ("Arrived", "已抵达"),
    "needs_assistance": ("Needs assistance", "需要协助"),
    "confirmed": ("Confirmed by staff", "工作人员已确认"),
    "left": ("Left the group", "已离队"),
    "not_seen": ("Not seen", "未见到"),
    "absent": ("Absent", "缺席"),
    "missing": ("Missing", "失踪"),
    "merged": ("Merged duplicate", "重复记录已合并"),
}

DISCREPANCY_LABELS: dict[str, tuple[str, str]] = {
    "behind_group": ("Behind their group's latest checkpoint", "落后于所在组的最新检查点"),
    "walkins": ("Walk-ins not placed in a group", "未分组的现场登记"),
    "duplicates": ("Probable duplicates", "疑似重复记录"),
    "route_reversal": ("Route reversals", "路线倒退"),
    "two_places": ("Seen in two places at once", "同时出现在两地"),
    "contradictory_status": ("Contradictory statuses", "状态矛盾"),
    "foreign_void": ("Voids of another device's record", "撤销其他设备的记录"),
    "headcounts": ("Headcount mismatches", "人数清点不符"),
    "quarantine": ("Quarantined records", "被隔离的记录"),
    "gaps": ("Devices with missing records", "记录缺失的设备"),
}

EVENT_LABELS: dict[str, tuple[str, str]] = {
    "checkin": ("Check-in", "签到"),
    "walkin": ("Walk-in", "现场登记"),
    "headcount": ("Headcount", "人数清点"),
    "flag": ("Flag", "标记"),
    "void": ("Void", "撤销"),
}


def both(key: str, table: dict[str, tuple[str, str]] = LABELS, sep: str = " / ") -> str:
    """``English / 中文`` for a label key (the key itself when unknown)."""
    en, zh = table.get(key, (key, key))
    return f"{en}{sep}{zh}" if zh != en else en


def all_text() -> str:
    """Every label in both languages, so a font subset covers them."""
    parts = []
    for table in (LABELS, STATE_LABELS, DISCREPANCY_LABELS, EVENT_LABELS):
        for en, zh in table.values():
            parts += [en, zh]
    return "".join(parts)
