"""Bring your own key: the owner's provider credential runs the job, only the gateway fee is charged."""

from __future__ import annotations

from pathlib import Path

from fakes.openai_fake import OpenAIFake
from fakes.server import FakeUpstream
from helpers.backends import rows
from helpers.gateway import GatewayProcess, wait_status
from helpers.ledger import check_ledger

OWN = "sk-owner-only-secret-7f3a"


def test_byok_runs_on_the_owners_key_and_charges_the_fee(tmp_path: Path) -> None:
    fake = OpenAIFake(api_key=OWN, polls_to_complete=2)
    with FakeUpstream(fake.app) as upstream:
        config = tmp_path / "providers.toml"
        # The gateway has no OpenAI key of its own: only the base URL (pointing at the fake).
        config.write_text(f'[providers.openai]\nbase_url = "{upstream.base_url}/v1"\npoll_interval_seconds = 0.2\n')
        gw = GatewayProcess(
            tmp_path / "gw", env={"VIDGATE_CONFIG": str(config), "VIDGATE_BYOK_FEE_PER_SECOND_USD": "0.002"}
        ).start()
        try:
            with gw.client(gw.new_key(balance=1.0)) as api:
                body = {"model": "openai/sora-2", "prompt": "my own key", "duration": 4}
                r = api.post("/v1/videos", json=body)
                assert r.status_code == 503 and r.json()["error"]["code"] == "no_provider_available"

                r = api.post("/v1/videos", json=body, headers={"X-Provider-Key": f"openai={OWN}"})
                assert r.status_code == 202, r.text
                job = r.json()
                assert job["usage"]["is_byok"] is True and job["billing"]["held"] == 0.008
                done = wait_status(api, job["id"], {"completed", "failed"}, timeout=30)
                assert done["status"] == "completed", done
                assert done["usage"] == {"cost": 0.002, "is_byok": True, "output_video_seconds": 1.0}
                assert all(r.headers["authorization"] == f"Bearer {OWN}" for r in fake.requests)

                bad = api.post("/v1/videos", json=body, headers={"X-Provider-Key": "openai=sk-wrong"}).json()
                failed = wait_status(api, bad["id"], {"completed", "failed"}, timeout=30)
                assert failed["status"] == "failed" and failed["error"]["code"] == "upstream_error"
                assert failed["billing"]["state"] == "void"

                for header, param in (
                    ("openai", "X-Provider-Key"),
                    ("vidgate=x", "X-Provider-Key"),
                    ("nobody=x", "X-Provider-Key"),
                ):
                    r = api.post("/v1/videos", json=body, headers={"X-Provider-Key": header})
                    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text

                listed = api.get("/v1/videos").text + api.get(f"/v1/videos/{job['id']}").text
                assert OWN not in listed
            events = "".join(d for (d,) in rows(gw, "SELECT data FROM events"))
            assert OWN not in events and "sk-wrong" not in events
            check_ledger(gw)
        finally:
            gw.stop()
        assert OWN not in gw.log_path.read_text()
