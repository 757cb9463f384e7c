"""Pretrained BERT encoders from any supported source, as Model Garden models.

`load_pretrained` picks the loader from its arguments:

* `hub_module`: a TF Hub BERT encoder SavedModel directory (hub.py);
* `init_checkpoint`: Google's TF1 `bert_model.ckpt` (tf1_checkpoint.py) if its
  variables are Google-named, else a Model Garden TF2 `tf.train.Checkpoint`
  (model_garden.py); a directory holding the checkpoint + bert_config.json +
  vocab.txt works too, and so does a Hugging Face directory with
  `model.safetensors` (safetensors_bert.py);
* otherwise `preset` (a name from keras_adapters.loaders.presets, default
  all-MiniLM-L6-v2, or a safetensors directory).
"""

import collections
import json
import os

from keras_adapters.errors import UserInputError
from keras_adapters.loaders import tf1_checkpoint
from keras_adapters.loaders.hub import load_hub_encoder
from keras_adapters.loaders.hub import load_hub_with_notes
from keras_adapters.loaders.model_garden import load_model_garden_checkpoint
from keras_adapters.loaders.safetensors_bert import load_safetensors_bert
from keras_adapters.loaders.tf1_checkpoint import load_tf1_checkpoint
from keras_adapters.loaders.tf1_checkpoint import write_tf1_checkpoint

__all__ = ["Pretrained", "load_pretrained", "load_hub_encoder",
           "load_model_garden_checkpoint", "load_safetensors_bert",
           "load_tf1_checkpoint", "write_tf1_checkpoint"]

Pretrained = collections.namedtuple(
    "Pretrained", "encoder vocab_file do_lower_case description")


def _guess_lower_case(path, notes):
  lowered = os.path.abspath(path).lower()
  if "uncased" in lowered:
    return True
  if "cased" in lowered:
    notes.append("do_lower_case=False guessed from 'cased' in the path")
    return False
  notes.append("do_lower_case=True assumed (pass do_lower_case to override)")
  return True


def _safetensors(model_dir):
  encoder = load_safetensors_bert(model_dir)
  lower = None
  tokenizer_config = os.path.join(model_dir, "tokenizer_config.json")
  if os.path.isfile(tokenizer_config):
    with open(tokenizer_config, encoding="utf-8") as f:
      lower = json.load(f).get("do_lower_case")
  return encoder, lower, f"safetensors BERT {model_dir}"


def _checkpoint(init_checkpoint, bert_config_file, notes):
  """(encoder, checkpoint dir, description) for a TF1 or Model Garden ckpt."""
  prefix = tf1_checkpoint.resolve_checkpoint(init_checkpoint)
  ckpt_dir = os.path.dirname(prefix)
  if not bert_config_file:
    found = [os.path.join(ckpt_dir, f) for f in ("bert_config.json",
                                                 "encoder.json")
             if os.path.isfile(os.path.join(ckpt_dir, f))]
    if not found:
      raise UserInputError(f"no bert_config.json beside {prefix}; pass "
                           "bert_config_file")
    bert_config_file = found[0]
  if tf1_checkpoint.is_tf1_bert_checkpoint(prefix):
    encoder = load_tf1_checkpoint(bert_config_file, prefix)
    notes.append("TF1 'gelu' read as the tanh approximation")
    kind = "Google TF1 BERT checkpoint"
  else:
    encoder = load_model_garden_checkpoint(prefix, bert_config_file)
    kind = "Model Garden TF2 checkpoint"
  return encoder, ckpt_dir, f"{kind} {prefix} ({bert_config_file})"


def _check_vocab_size(vocab_file, encoder):
  """A vocab of another model gives wrong (or out-of-range) token ids."""
  with open(vocab_file, encoding="utf-8", errors="replace") as f:
    tokens = sum(1 for _ in f)
  rows = int(encoder.get_embedding_table().shape[0])
  if tokens != rows:
    raise UserInputError(
        f"vocab file {vocab_file} has {tokens} tokens but the checkpoint's "
        f"word embeddings have {rows} rows; pass the vocab.txt released with "
        "this checkpoint (--vocab_file)")


def load_pretrained(preset=None, bert_config_file=None, init_checkpoint=None,
                    hub_module=None, vocab_file=None, do_lower_case=None):
  """Returns Pretrained(encoder, vocab_file, do_lower_case, description).

  `preset` is used only when neither `hub_module` nor `init_checkpoint` is
  given. `vocab_file` defaults to the vocab.txt of the source;
  `do_lower_case` to what the source records, else a guess from
  "uncased"/"cased" in the path.
  """
  if hub_module and init_checkpoint:
    raise UserInputError("pass hub_module or init_checkpoint, not both")
  if bert_config_file and not init_checkpoint:
    raise UserInputError("bert_config_file needs init_checkpoint (the "
                         "checkpoint it describes)")
  notes = []
  source_lower = None
  if hub_module:
    encoder, default_vocab, source_lower, hub_notes = load_hub_with_notes(
        hub_module)
    description = f"TF Hub BERT {hub_module}"
    notes.append(hub_notes)
    origin = hub_module
  elif init_checkpoint and os.path.isfile(
      os.path.join(init_checkpoint, "model.safetensors")):
    encoder, source_lower, description = _safetensors(init_checkpoint)
    default_vocab = origin = os.path.join(init_checkpoint, "vocab.txt")
  elif init_checkpoint:
    encoder, ckpt_dir, description = _checkpoint(
        init_checkpoint, bert_config_file, notes)
    default_vocab = origin = os.path.join(ckpt_dir, "vocab.txt")
  elif preset and os.path.isdir(preset):
    if not os.path.isfile(os.path.join(preset, "model.safetensors")):
      raise UserInputError(f"preset directory {preset} has no "
                           "model.safetensors; pass a preset name or a "
                           "Hugging Face BERT directory")
    encoder, source_lower, description = _safetensors(preset)
    default_vocab = origin = os.path.join(preset, "vocab.txt")
  else:
    # Imported here: presets imports this package's safetensors loader.
    from keras_adapters.loaders import presets  # pylint: disable=g-import-not-at-top
    name = preset or presets.DEFAULT_PRESET
    encoder, default_vocab, source_lower = presets.load_preset(name)
    description = f"preset {name}"
    origin = default_vocab

  vocab_file = vocab_file or default_vocab
  if not vocab_file or not os.path.isfile(vocab_file):
    raise UserInputError(
        f"vocab file {vocab_file or '(none in the SavedModel)'} not found; "
        "pass vocab_file (the vocab.txt released with the model)")
  _check_vocab_size(vocab_file, encoder)
  if do_lower_case is None:
    do_lower_case = (source_lower if source_lower is not None
                     else _guess_lower_case(origin, notes))
  notes = "; ".join(n for n in notes if n)
  return Pretrained(encoder, vocab_file, bool(do_lower_case),
                    f"{description}" + (f" [{notes}]" if notes else ""))
