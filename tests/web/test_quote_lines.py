"""The quote's lines (what the playground shows) add up to what a create holds, for every model,
every provider's card, every resolution, with and without audio and with several samples."""

from __future__ import annotations

import msgspec

from vidgate.errors import UnsupportedParameterError, ValidationError
from vidgate.gateway.api.quote import card_lines
from vidgate.gateway.billing import pricing
from vidgate.gateway.catalog.catalog import load_catalog
from vidgate.gateway.catalog.validate import validate


def test_quote_lines_add_up_to_the_hold() -> None:
    catalog = load_catalog()
    checked = 0
    for model in (m for m in catalog.models if not m.retired):
        caps_res = list(model.resolutions) or [None]
        for resolution in caps_res:
            for audio in {False, model.audio}:
                for samples in {1, model.sample_count[1]}:
                    body = {"model": model.id, "prompt": "p", "sample_count": samples}
                    if resolution:
                        body["resolution"] = resolution
                    if model.audio:
                        body["generate_audio"] = audio
                    try:
                        spec = validate(msgspec.json.encode(body), catalog)
                    except (ValidationError, UnsupportedParameterError):
                        continue  # a combination the model refuses has no price
                    for ref in model.providers:
                        card = model.price_card(ref.name)
                        lines = card_lines(card, spec)
                        held = pricing.quote(
                            model,
                            seconds=spec.duration,
                            resolution=spec.resolution,
                            audio=spec.audio,
                            sample_count=spec.sample_count,
                            size=spec.size,
                            providers=(ref.name,),
                        )
                        total = sum(round(line.amount * pricing.MICROS_PER_USD) for line in lines)
                        assert total == held, (model.id, ref.name, body, lines)
                        checked += 1
    assert checked > 50, checked
