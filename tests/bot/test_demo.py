"""Demo data in a deployment's config: found, and said where."""

from __future__ import annotations

from dataclasses import replace

from bot.config import Config
from bot.content import Content
from bot.demo import content_warnings, demo_data


def own_deployment(config: Config) -> Config:
    """The example config with its sample values replaced, as a commune would."""
    communes = tuple(
        replace(
            c,
            support=replace(c.support, phone="0237 3835 100"),
            villages=tuple(replace(v, name=v.name.replace(" (m\u1eabu)", "")) for v in c.villages),
        )
        for c in config.communes
    )
    ways_in = {k: v.replace(" (m\u1eabu)", "") for k, v in config.ways_in.items()}
    return replace(config, communes=communes, ways_in=ways_in)


def test_the_example_config_is_found_out_where_it_matters(config: Config) -> None:
    problems = demo_data(config)
    phone = [p for p in problems if ".support.phone" in p]
    assert len(phone) == 1, "said once, as a placeholder"
    assert "placeholder" in phone[0]
    assert any(".villages.dong-hoa.name" in p for p in problems)
    assert any(p.startswith("config.ways_in.zalo_bot ") for p in problems)


def test_a_deployment_of_its_own_passes(config: Config) -> None:
    assert demo_data(own_deployment(config)) == []
    zeros = own_deployment(config)
    commune = replace(zeros.communes[0], support=replace(zeros.communes[0].support, phone="000"))
    (problem,) = demo_data(replace(zeros, communes=(commune,)))
    assert "placeholder" in problem


def test_a_provider_note_for_a_provider_the_config_lacks_is_warned_about(
    config: Config, content: Content
) -> None:
    assert content_warnings(config, content) == []
    without_misa = replace(config, providers=tuple(p for p in config.providers if p.id != "misa"))
    (warning,) = content_warnings(without_misa, content)
    assert "'misa'" in warning
