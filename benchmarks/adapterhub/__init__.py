"""keras_adapters against AdapterHub (`adapters`, PyTorch): the race
(compare.py), AdapterHub's side of it (hf_train.py, run in
.venv-adapterhub), padding counts (padding.py) and a torch step profile
(profile_hf.py). Modules here import only the standard library at import
time, so that both venvs can load them."""
