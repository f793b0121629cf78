"""Approval rules in ``agent.toml``: a tool's section sets ``min_approvals``, ``separate_duties``
and ``standing``; a rule that cannot hold is one line naming the file, the field and the fix;
and a file agent's rule holds end to end (two distinct approvers before the deploy runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.tools import Policy
from bot.agents.files import AgentFileError, load_agent
from bot.mcp import McpToolset
from bot.runtime import Runtime
from bot.settings import Settings
from channels.gateway import Conflict
from tests.answering import advance_and_answer
from tests.file_agents import SHIPPER, shipper
from tests.services import REPO, cli_args

ALICE, BOB = "alice@example.com", "bob@example.com"


def test_a_tools_section_sets_its_approval_rules(tmp_path: Path) -> None:
    folder = shipper(tmp_path, "min_approvals = 2\nseparate_duties = false") / SHIPPER
    deploy = load_agent(folder, Settings()).tool("deploy")
    assert deploy is not None
    assert deploy.policy == Policy(needs_approval=True, min_approvals=2, separate_duties=False)
    standing = load_agent(shipper(tmp_path / "other", "standing = true") / SHIPPER, Settings()).tool("deploy")
    assert standing is not None and standing.policy == Policy(needs_approval=True, standing=True)


def test_unset_rules_keep_the_defaults(tmp_path: Path) -> None:
    deploy = load_agent(shipper(tmp_path, "") / SHIPPER, Settings()).tool("deploy")
    assert deploy is not None and deploy.policy == Policy(needs_approval=True)
    assert (deploy.policy.min_approvals, deploy.policy.separate_duties, deploy.policy.standing) == (
        1,
        True,
        False,
    )


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ("min_approvals = 0", "tools.1.min_approvals: Input should be greater than or equal to 1"),
        ('min_approvals = "two"', "tools.1.min_approvals: Input should be a valid integer"),
        (
            "standing = true\nmin_approvals = 2",
            "tools.1: Value error, standing = true needs min_approvals = 1",
        ),
        ('separate_duties = "no"', "tools.1.separate_duties: Input should be a valid boolean"),
        ("two_person = true", "tools.1.two_person: Extra inputs are not permitted (remove it"),
    ],
)
def test_a_rule_that_cannot_hold_is_one_line_naming_the_field(
    tmp_path: Path, rules: str, expected: str
) -> None:
    with pytest.raises(AgentFileError) as raised:
        load_agent(shipper(tmp_path, rules) / SHIPPER, Settings())
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_approval_rules_on_a_tool_that_runs_unasked_are_refused(tmp_path: Path) -> None:
    folder = shipper(tmp_path, "") / SHIPPER
    toml = (folder / "agent.toml").read_text()
    (folder / "agent.toml").write_text(
        toml.replace('policy = "read_only"', 'policy = "read_only"\nstanding = true')
    )
    with pytest.raises(
        AgentFileError, match=r'tools.0: Value error, standing only apply to policy = "needs_approval"'
    ):
        load_agent(folder, Settings())


def test_agents_check_names_the_bad_rule_and_agents_lists_the_good_ones(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "OUTERLOOP_AGENTS_DIR": str(shipper(tmp_path / "bad", "min_approvals = 0")),
    }
    bad = subprocess.run(
        [sys.executable, *cli_args("agents"), "check"], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "tools.1.min_approvals" in bad.stderr, bad.stderr
    env["OUTERLOOP_AGENTS_DIR"] = str(
        shipper(tmp_path / "good", "min_approvals = 2\nseparate_duties = false")
    )
    good = subprocess.run(
        [sys.executable, *cli_args("agents")], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert "2 distinct approvers, a requester may approve" in good.stdout, good.stdout + good.stderr


def test_a_file_agent_with_two_approvers_runs_only_after_two_distinct_people_approve(
    env: dict[str, str], tmp_path: Path, deploy_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        **env,
        "OUTERLOOP_AGENTS_DIR": str(shipper(tmp_path / "agents", "min_approvals = 2")),
        "OUTERLOOP_APPROVERS": f"{ALICE},{BOB}",
    }.items():
        monkeypatch.setenv(name, value)
    runtime = Runtime.from_settings(Settings())
    thread_id = runtime.launch(SHIPPER, "deploy v1.0.0 to staging").thread.id
    waiting = advance_and_answer(runtime, thread_id)
    assert waiting is not None and waiting.pending is not None and waiting.pending.quorum == 2
    request_id = waiting.pending.request_id

    runtime.respond(thread_id, request_id, ALICE, approved=True, channel="cli")
    assert advance_and_answer(runtime, thread_id) is not None
    after_one = runtime.load(thread_id)
    assert after_one.pending is not None and after_one.approvals == (ALICE,)
    with pytest.raises(Conflict, match="approved this already"):
        runtime.respond(thread_id, request_id, ALICE, approved=True, channel="cli")
    assert not deploy_log.exists(), "one approval of two ran the deploy"

    runtime.respond(thread_id, request_id, BOB, approved=True, channel="cli")
    done = advance_and_answer(runtime, thread_id)
    assert done is not None and done.status == "done"
    assert deploy_log.read_text().splitlines() == ["v1.0.0 staging"]


def test_an_mcp_tools_overrides_set_approval_rules_with_an_explicit_needs_approval(tmp_path: Path) -> None:
    folder = shipper(tmp_path, "") / SHIPPER
    server = '[[mcp]]\nname = "github"\ncommand = "github-mcp-server"\n[mcp.tools.create_issue]\n'
    toml = (folder / "agent.toml").read_text()
    (folder / "agent.toml").write_text(toml + server + 'policy = "needs_approval"\nmin_approvals = 2\n')
    [toolset] = load_agent(folder, Settings()).toolsets
    assert isinstance(toolset, McpToolset)
    assert toolset.rules["create_issue"].policy == Policy(needs_approval=True, min_approvals=2)
    (folder / "agent.toml").write_text(toml + server + "min_approvals = 2\n")
    with pytest.raises(
        AgentFileError, match=r"mcp.0.tools.create_issue: Value error, min_approvals only apply"
    ):
        load_agent(folder, Settings())
