"""The pages show one language of a bilingual message ("必填 (required)"), and picking it takes time in
proportion to the message, whatever the message echoes of the request."""

from __future__ import annotations

import time

from service.web.i18n import localize
from tests.web.test_web_shell import login

CASES = [
    ("必填 (required)", "必填", "required"),
    ("必填（required）", "必填", "required"),
    ("the task is no longer open (任务已结束)", "任务已结束", "the task is no longer open"),
    ("案件 3 (case 3) 已结束 (closed)", "案件 3 (case 3) 已结束", "closed"),  # only the closing pair splits
    ("no brackets at all", "no brackets at all", "no brackets at all"),
    ("两种都是中文 (中文)", "两种都是中文 (中文)", "两种都是中文 (中文)"),  # not one Chinese, one English: as is
    ("nested (a (b))", "nested (a (b))", "nested (a (b))"),
    ("", "", ""),
    ("未知角色 (unknown): x, y", "未知角色：x, y", "unknown: x, y"),  # a bilingual lead names what follows
    ("the password is not acceptable (密码不符合要求): 至少 10 个字符 (at least 10 characters)",
     "密码不符合要求：至少 10 个字符", "the password is not acceptable: at least 10 characters"),
    ("automatic step failed (自动步骤执行失败): name 'x' is not defined",
     "自动步骤执行失败：name 'x' is not defined", "automatic step failed: name 'x' is not defined"),
    ("可选 (one of)：a, b", "可选：a, b", "one of: a, b"),
    ("ok (好):", "好", "ok"),
    ("(中文): rest", "(中文): rest", "(中文): rest"),  # no lead before the pair: as is
    ("cadre (c1 (张三)): x", "cadre (c1 (张三)): x", "cadre (c1 (张三)): x"),  # a bracket inside the pair: as is
]


def test_each_language_takes_its_half(app):
    for message, chinese, english in CASES:
        for language, wanted in (("zh", chinese), ("en", english)):
            with app.test_request_context(headers={"Cookie": f"lang={language}"}):
                assert localize(message) == wanted, (message, language)


def test_a_message_echoing_a_long_run_of_spaces_does_not_hold_the_server(client):
    """An unknown process key of 100,000 spaces in a designer's URL comes back in the 404's message; a
    backtracking pattern took 52 s for 80,000 (every thread of the server waiting), a scan takes milliseconds."""
    login(client, "designer")
    began = time.monotonic()
    response = client.get("/designer/a" + "%20" * 100_000 + "b/diff")
    assert response.status_code == 404
    assert time.monotonic() - began < 5.0  # generous for a shared machine; the old pattern needed minutes


def test_a_long_echo_of_leads_is_split_once(app):
    """Echoed input made of bilingual leads is split at the first one only: no recursion to run out of."""
    message = "失败 (failed): " + "a (中): " * 50_000
    with app.test_request_context(headers={"Cookie": "lang=en"}):
        assert localize(message).startswith("failed: a (中): a (中)")
