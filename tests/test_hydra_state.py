"""nas composes its configs with Hydra, but never at the expense of the caller's own Hydra state."""

from __future__ import annotations

import hydra
import pytest
from hydra.core.global_hydra import GlobalHydra
from hydra.core.singleton import Singleton
from hydra.errors import ConfigCompositionException

import nas
from nas._config import compose, load_group_file


@pytest.fixture
def no_hydra():
    """No GlobalHydra for the test, whatever earlier tests left; theirs is put back afterwards."""
    saved = Singleton._instances.pop(GlobalHydra, None)
    yield
    Singleton._instances.pop(GlobalHydra, None)
    if saved is not None:
        Singleton._instances[GlobalHydra] = saved


@pytest.fixture
def user_config_dir(tmp_path):
    """A user's own Hydra app config, nothing like ours."""
    (tmp_path / "config.yaml").write_text("greeting: hello\nmodel:\n  layers: 3\n")
    return str(tmp_path)


def assert_users_config_composes():
    cfg = hydra.compose("config", return_hydra_config=True)
    assert cfg.greeting == "hello" and cfg.model.layers == 3
    assert "space" not in cfg and "strategy" not in cfg
    assert cfg.hydra.job.name == "users_app"  # Hydra's job name is process-wide state too


def test_composition_inside_a_users_hydra_app_leaves_it_working(no_hydra, user_config_dir):
    with hydra.initialize_config_dir(config_dir=user_config_dir, version_base="1.3", job_name="users_app"):
        assert_users_config_composes()
        users = GlobalHydra.instance()
        assert compose(["strategy=tpe"]).strategy._target_ == "optuna.samplers.TPESampler"
        assert nas.get_space("macro_chain").name == "macro_chain"
        assert load_group_file("strategy", "bohb")[1]._target_ == "optuna.samplers.TPESampler"  # `defaults`: composed
        nas.Searcher("macro_chain", "tpe", seed=0)
        assert GlobalHydra.instance() is users and users.is_initialized()
        assert_users_config_composes()
    assert not GlobalHydra.instance().is_initialized()


def test_a_failed_composition_leaves_the_users_hydra_intact(no_hydra, user_config_dir):
    with hydra.initialize_config_dir(config_dir=user_config_dir, version_base="1.3", job_name="users_app"):
        with pytest.raises(ConfigCompositionException, match="no_such_key"):
            compose(["no_such_key=1"])
        assert_users_config_composes()
        with pytest.raises(nas.ConfigError, match="strategy"):
            compose(["strategy=no_such_strategy"])
        assert_users_config_composes()


def test_without_hydra_before_none_is_left_initialised(no_hydra):
    compose(["space=mlp"])
    assert not GlobalHydra.instance().is_initialized()
    with pytest.raises(ConfigCompositionException):
        compose(["no_such_key=1"])
    assert not GlobalHydra.instance().is_initialized()
