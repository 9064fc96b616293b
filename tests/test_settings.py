"""The training settings' one source: defaults, ranges and help beside TrainConfig's fields, one check."""

from __future__ import annotations

from dataclasses import fields

import pytest
from torch import nn

from simcse_core.model.dropout import set_dropout
from simcse_core.model.pooling import POOLERS, check_pooler
from simcse_core.training.config import SETTINGS, SettingError, TrainConfig, check_setting, setting_spec


def test_every_trainconfig_field_has_one_spec_whose_default_is_the_fields():
    config = TrainConfig()
    assert list(SETTINGS) == [f.name for f in fields(TrainConfig)]
    for name, spec in SETTINGS.items():
        assert spec.default == getattr(config, name) and spec.help
        if spec.kind in ("int", "float"):
            assert (spec.optional and spec.default is None) or spec.low <= spec.default <= spec.high
    assert setting_spec("temperature").default == 0.05 and setting_spec("pooler").choices == POOLERS
    with pytest.raises(KeyError, match="No training setting"):
        setting_spec("tau")


@pytest.mark.parametrize(("name", "value", "canonical"), [
    ("steps", 64.0, 64), ("batch_size", "32", 32), ("temperature", 1, 1.0), ("dropout", 0.0, 0.0),
    ("pooler", "cls", "cls"), ("pooler", None, None), ("mlp_only_train", None, None), ("time_budget_s", 60, 60.0),
])
def test_check_setting_returns_the_canonical_value(name, value, canonical):
    got = check_setting(name, value)
    assert got == canonical and type(got) is type(canonical)


@pytest.mark.parametrize(("name", "value"), [
    ("temperature", 0.0), ("temperature", float("nan")), ("temperature", "warm"), ("dropout", 0.6),
    ("steps", 2.5), ("steps", True), ("batch_size", None), ("pooler", "max"), ("mode", "semi"),
    ("fixed_dropout_mask", 1), ("max_length", 1),
])
def test_check_setting_refuses_with_an_error_naming_the_setting(name, value):
    with pytest.raises(SettingError) as caught:
        check_setting(name, value)
    assert caught.value.setting == name and caught.value.problems.keys() == {name}
    assert ("pooler" if name == "pooler" else name) in str(caught.value)


def test_trainconfig_reports_every_wrong_setting_at_once():
    with pytest.raises(SettingError) as caught:
        TrainConfig(temperature=0, dropout=0.9, warmup=200)
    assert set(caught.value.problems) == {"temperature", "dropout", "warmup"}
    assert isinstance(caught.value, ValueError)
    assert TrainConfig(steps=10.0, batch_size="8").batch_size == 8  # a browser's numbers


def test_one_pooler_check():
    assert check_pooler("mean") == "mean"
    with pytest.raises(ValueError, match="Unknown pooler 'max'; choose one of cls"):
        check_pooler("max")


def test_set_dropout_sets_every_module_and_the_config_and_checks_the_rate(tiny_encoder):
    model = tiny_encoder.model
    assert set_dropout(model, 0.3) == 0.3
    assert {m.p for m in model.modules() if isinstance(m, nn.Dropout)} == {0.3}
    assert model.config.hidden_dropout_prob == model.config.attention_probs_dropout_prob == 0.3
    with pytest.raises(ValueError, match="dropout must be a number between 0 and 0.5"):
        set_dropout(model, 0.95)
    from simcse_core.model.dropout import DROPOUT_RANGE

    assert (setting_spec("dropout").low, setting_spec("dropout").high) == DROPOUT_RANGE  # one source


def test_the_command_line_states_each_settings_default_and_range():
    from simcse_core.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    spec = setting_spec("temperature")
    assert f"(default: {spec.default}; {spec.low:g} to {spec.high:g})" in " ".join(text.split())
