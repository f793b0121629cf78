import redis

from agent.definition import AgentSpec, Registry
from agent.scripted_model import ScriptedModel
from bot.agents.deploy import HERE as DEPLOY
from bot.runtime import Runtime
from bot.settings import Settings
from bot.worker import prepare


def test_prepare_builds_each_agents_model_and_stores_nothing(runtime: Runtime) -> None:
    prepare(runtime)

    assert isinstance(runtime.models["deploy"], ScriptedModel)
    assert runtime.connection.keys("*") == []


def test_prepare_leaves_an_agent_without_a_model_to_fail_in_its_jobs(settings: Settings) -> None:
    scriptless = AgentSpec(name="scriptless", description="no script", prompt=DEPLOY / "prompt.md")
    rt = Runtime(settings, redis.Redis.from_url(settings.require_redis_url()), Registry([scriptless]))

    prepare(rt)

    assert rt.models == {}
