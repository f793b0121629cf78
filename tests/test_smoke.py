from pathlib import Path

from agent import Origin, Thread, advance, reduce
from agent.events import HumanResponse, Trigger
from agent.scripted_model import ScriptedModel
from bot.agents.deploy import SCRIPT, deploy_agent


def test_deploy_agent_runs_offline_to_done_after_approval(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        check=True,
    )
    subprocess.run(["git", "-C", str(tmp_path), "tag", "v1.0.0"], check=True)
    spec = deploy_agent(tmp_path, "echo deploying {tag} to {environment}")
    model = ScriptedModel.from_file(SCRIPT)
    thread = reduce(
        Thread(id="t", agent="deploy"), Trigger(text="ship it", origin=Origin(channel="cli", sender="me"))
    )
    thread = advance(thread, spec, model)
    assert thread.pending is not None and thread.pending.call is not None
    assert thread.pending.call.arguments == {"tag": "v1.0.0", "environment": "staging"}
    thread = reduce(
        thread, HumanResponse(request_id=thread.pending.request_id, responder="me", approved=True)
    )
    thread = advance(thread, spec, model)
    assert thread.status == "done"
