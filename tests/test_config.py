"""keras_adapters.config: AdapterConfig and the enumerations, TF-free."""

import dataclasses
import json
import subprocess
import sys

import pytest

from harness import REPO
from harness import subprocess_env
from keras_adapters.config import ADAPTER_CONFIG_KEYS
from keras_adapters.config import ADAPTER_TYPES
from keras_adapters.config import AdapterConfig
from keras_adapters.errors import UserInputError


def test_round_trip_through_a_packs_json_record():
  config = AdapterConfig(fine_tune_mode="fusion", adapter_type="pfeiffer",
                         adapter_size=8, adapter_init_scale=0.01,
                         fused_adapter_sizes=[64, 64])
  record = json.loads(json.dumps(dict(config.to_dict(), task_name="mrpc",
                                      fingerprint="abc")))
  assert AdapterConfig.from_dict(record) == config
  assert config.fused_adapter_sizes == (64, 64)


def test_a_record_without_a_key_takes_the_default():
  # Packs from before fusion have no fused_adapter_sizes; None = not set.
  config = AdapterConfig.from_dict(dict(adapter_size=8, top_k_layers=None))
  assert (config.adapter_size, config.top_k_layers,
          config.fused_adapter_sizes) == (8, 1, ())
  assert set(ADAPTER_CONFIG_KEYS) == set(AdapterConfig().to_dict())


@pytest.mark.parametrize("bad, named", [
    (dict(fine_tune_mode="lora"), "unknown fine_tune_mode 'lora'; choose"),
    (dict(adapter_type="bogus"), "unknown adapter_type 'bogus'; choose"),
    (dict(adapter_size=0), "adapter_size must be >= 1, got 0"),
    (dict(adapter_size=8.0), "adapter_size must be an integer, got 8.0"),
    (dict(top_k_layers=True), "top_k_layers must be an integer, got True"),
    (dict(adapter_init_scale=-1.0), "adapter_init_scale must be >= 0"),
])
def test_bad_values_are_one_line_user_errors(bad, named):
  with pytest.raises(UserInputError) as e:
    AdapterConfig(**bad)
  assert str(e.value).startswith(named)
  assert "\n" not in str(e.value)


def test_importing_the_config_does_not_load_tensorflow():
  result = subprocess.run(
      [sys.executable, "-c", "import sys, keras_adapters.config; "
       "print('tensorflow' in sys.modules)"],
      cwd=REPO, env=subprocess_env(), capture_output=True, text=True,
      timeout=120, check=True)
  assert result.stdout.strip() == "False"


def test_the_drivers_adapter_flags_are_the_config_fields():
  from absl import flags  # pylint: disable=g-import-not-at-top
  from keras_adapters.cli import driver_flags  # pylint: disable=g-import-not-at-top
  values = flags.FlagValues()
  driver_flags.define_adapter_config_flags(values)
  values(["prog", "--fine_tune_mode=top_k", "--top_k_layers=2",
          "--leave_out=0,1", "--adapter_init_scale=0.01"])
  config = AdapterConfig.from_dict(values.flag_values_dict())
  assert config == AdapterConfig(fine_tune_mode="top_k", top_k_layers=2,
                                 leave_out=(0, 1), adapter_init_scale=0.01)
  names = {f.name for f in dataclasses.fields(AdapterConfig)}
  assert set(values) == names - {"fused_adapter_sizes"}
  assert values["adapter_type"].parser.enum_values == list(ADAPTER_TYPES)
  with pytest.raises(flags.IllegalFlagValueError):
    values(["prog", "--fine_tune_mode=bogus"])
