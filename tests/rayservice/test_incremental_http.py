"""An incremental upgrade over HTTP: the hook with METARAY_GATEWAY_API=on, the Serve poller
putting each target_capacity to a pretend dashboard and reading it back from Ray's answer, and a
restart of metaray in the middle that changes nothing."""

from __future__ import annotations

from app.shell.settings import Settings
from tests.rayservice.gateway_world import GatewayLoop, incremental_object
from tests.rayservice.test_http import HttpLoop, Runner, fresh_app


class HttpGatewayLoop(HttpLoop, GatewayLoop):
    pass


def test_the_overlay_switch_is_read_from_the_environment() -> None:
    assert Settings.from_env({"METARAY_GATEWAY_API": "on"}).gateway_api is True
    assert Settings.from_env({}).gateway_api is False


def test_an_incremental_upgrade_over_http_survives_a_restart_and_promotes() -> None:
    loop = HttpGatewayLoop(incremental_object(step=25, interval=2, surge=50))
    loop.clock = [loop.now]
    loop.runner = Runner()
    loop.app = fresh_app(loop.world, loop.clock, gateway_api=True)
    loop.until(lambda s: s.status.get("numServeEndpoints") == 1)
    old = loop.active or ""
    assert loop.capacity(old) == 100  # Ray was sent target_capacity 100 and says so
    loop.new_image()
    loop.until(lambda s: bool(s.pending) and s.weights().get(s.pending or "", 0) > 0, 60)
    new = loop.pending or ""
    weights, puts = loop.weights(), list(loop.world.puts)
    loop.app = fresh_app(loop.world, loop.clock, gateway_api=True)  # restarted: no memory
    loop.step()
    assert loop.weights()[new] >= weights[new]
    assert all(p in loop.world.puts for p in puts)
    loop.until(lambda s: s.active == new, 200)
    assert loop.weights() == {new: 100}
    assert loop.capacity(new) == 100 and loop.capacity(old) == 0
