// English and Simplified Chinese strings; elements name theirs with data-i18n / data-i18n-ph.
const STRINGS = {
  en: {
    title: "Muster field", lang: "中文", enrol: "Enrol this device", code: "Enrolment code",
    scan: "Scan", name: "Your name", label: "Device label", passphrase: "Passphrase",
    passphrase2: "Passphrase again", enrolBtn: "Enrol", unlock: "Unlock", unlockBtn: "Unlock",
    checkpoint: "Checkpoint", find: "Find", walkin: "Walk-in", headcount: "Headcount",
    outbox: "Outbox", search: "Name, document number or code", checkin: "Check in",
    checkedIn: "Checked in", flag: "Flag", fullName: "Full name", altNames: "Other names (comma separated)",
    docNumber: "Document number", sex: "Sex", note: "Note", register: "Register walk-in",
    group: "Group", count: "People counted", record: "Record headcount", sync: "Sync now",
    queued: "queued", sent: "sent", rejected: "rejected", void: "Void", online: "Online",
    offline: "Offline", saved: "Saved on this phone", wrongPass: "Wrong passphrase",
    mismatch: "Passphrases differ", syncing: "Syncing…", synced: "Synced", noResults: "No one found",
    syncFailed: "Not synced; will retry", lock: "Lock", pulled: "Roster people",
    medical: "medical", injured: "injured", vulnerable: "vulnerable", "lost-documents": "lost documents", other: "other",
    checkin_k: "check-in", walkin_k: "walk-in", headcount_k: "headcount", flag_k: "flag", void_k: "void",
    unknown: "unknown", female: "female", male: "male", revoked: "This device was revoked",
  },
  zh: {
    title: "Muster 现场", lang: "English", enrol: "登记此设备", code: "登记码",
    scan: "扫码", name: "您的姓名", label: "设备名称", passphrase: "密码短语",
    passphrase2: "再次输入密码短语", enrolBtn: "登记", unlock: "解锁", unlockBtn: "解锁",
    checkpoint: "检查点", find: "查找", walkin: "临时登记", headcount: "清点人数",
    outbox: "发件箱", search: "姓名、证件号或二维码", checkin: "签到",
    checkedIn: "已签到", flag: "标记", fullName: "全名", altNames: "其他名字（逗号分隔）",
    docNumber: "证件号码", sex: "性别", note: "备注", register: "登记临时人员",
    group: "分组", count: "清点人数", record: "记录人数", sync: "立即同步",
    queued: "待发送", sent: "已发送", rejected: "已拒绝", void: "作废", online: "在线",
    offline: "离线", saved: "已保存在本机", wrongPass: "密码短语错误",
    mismatch: "两次输入不一致", syncing: "正在同步…", synced: "已同步", noResults: "未找到",
    syncFailed: "未同步，稍后重试", lock: "锁定", pulled: "名单人数",
    medical: "需医疗", injured: "受伤", vulnerable: "弱势", "lost-documents": "证件遗失", other: "其他",
    checkin_k: "签到", walkin_k: "临时登记", headcount_k: "人数", flag_k: "标记", void_k: "作废",
    unknown: "未知", female: "女", male: "男", revoked: "此设备已被吊销",
  },
};

let lang = localStorage.getItem("muster-lang") || (navigator.language.startsWith("zh") ? "zh" : "en");

export const t = (key) => STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
export const current = () => lang;

/** Fill every marked element of root with the current language. */
export function apply(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-Hans" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
}
export function toggle() {
  lang = lang === "en" ? "zh" : "en";
  localStorage.setItem("muster-lang", lang);
  apply();
}
