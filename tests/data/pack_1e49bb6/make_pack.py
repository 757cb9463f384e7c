"""Writes an adapter pack of a tiny seeded BERT and the logits it gives
into the folder named by the argument. Run from the root of a checkout of
commit 1e49bb6 (before leave_out), as
`python tests/data/pack_1e49bb6/make_pack.py <folder>`."""
import json, subprocess, sys
sys.path.insert(0, "tests")
import numpy as np
import tensorflow as tf
import tf_keras
import harness
from keras_adapters.models.text_classifier import build_classifier
from keras_adapters.saving import adapter_pack

out = sys.argv[1]
encoder = harness.tiny_encoder(max_sequence_length=16, inner_activation="gelu", seed=5)
tf_keras.utils.set_random_seed(7)
model, encoder = build_classifier(encoder, 3, "adapter", adapter_size=8, adapter_init_scale=0.05)
for i, v in enumerate(model.trainable_variables):
  v.assign(v + tf.random.stateless_normal(v.shape, seed=[i, 1], stddev=0.05))
adapter_pack.save_adapter_pack(out + "/adapter_pack.npz", model, encoder, dict(
    task_name="generic", name="tiny-three", labels=["a", "b", "c"], is_regression=False,
    is_pair=True, fine_tune_mode="adapter", adapter_type="houlsby", adapter_size=8,
    adapter_init_scale=0.05, top_k_layers=1, fused_adapter_sizes=[],
    max_seq_length=16, model="a tiny random BERT (tests/harness.tiny_encoder seed 5)"))
ids = np.array([[2, 7, 9, 3, 11, 3, 0, 0], [2, 4, 8, 5, 3, 6, 6, 3]], np.int32)
inputs = dict(input_word_ids=ids, input_mask=(ids > 0).astype(np.int32),
              input_type_ids=np.array([[0, 0, 0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1]], np.int32))
logits = model(inputs, training=False).numpy()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
json.dump(dict(commit=commit, inputs={k: v.tolist() for k, v in inputs.items()},
               logits=logits.tolist()), open(out + "/expected.json", "w"), indent=1)
print(commit, logits)
