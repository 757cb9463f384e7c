"""An independent NumPy BERT forward pass over Hugging Face-named tensors.

Written from the BERT paper (Devlin et al., 2019) and Hugging Face
`BertModel` semantics (post-LayerNorm Transformer, eps 1e-12, learned absolute
positions, masked keys excluded from the softmax, tanh pooler over [CLS]); it
shares no code with Model Garden so the loaders can be checked against it.
Computes in float64.
"""

import numpy as np
from scipy.special import erf


def _layer_norm(x, gamma, beta, eps=1e-12):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * gamma + beta


def gelu(x, approximate=False):
  if approximate:  # Google TF1 BERT's "gelu" / HF "gelu_new".
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) *
                                    (x + 0.044715 * x ** 3)))
  return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))  # HF "gelu".


def _dense(t, name, x):
  # HF Linear weights are [out, in].
  return x @ t[name + ".weight"].T + t[name + ".bias"]


def bert_forward(tensors, input_ids, input_mask, type_ids, num_heads,
                 gelu_approximate=False):
  """Returns (sequence_output [B, T, H], pooled_output [B, H]) as float64.

  Args:
    tensors: HF `BertModel` state dict (name -> array), optionally "bert."-
      prefixed.
    input_ids, input_mask, type_ids: int arrays [B, T]; mask 1 = real token.
    num_heads: attention heads.
    gelu_approximate: use the tanh approximation instead of the erf GELU.
  """
  t = {k[len("bert."):] if k.startswith("bert.") else k:
       np.asarray(v, np.float64) for k, v in tensors.items()}
  input_ids, type_ids = np.asarray(input_ids), np.asarray(type_ids)
  batch, length = input_ids.shape
  x = (t["embeddings.word_embeddings.weight"][input_ids] +
       t["embeddings.position_embeddings.weight"][np.arange(length)][None] +
       t["embeddings.token_type_embeddings.weight"][type_ids])
  x = _layer_norm(x, t["embeddings.LayerNorm.weight"],
                  t["embeddings.LayerNorm.bias"])
  hidden = x.shape[-1]
  head_dim = hidden // num_heads
  # Padded keys get -inf before the softmax (every query sees only real keys).
  key_bias = np.where(np.asarray(input_mask)[:, None, None, :] > 0, 0.0,
                      -np.inf)

  def heads(y):  # [B, T, H] -> [B, heads, T, head_dim]
    return y.reshape(batch, length, num_heads, head_dim).transpose(0, 2, 1, 3)

  num_layers = len({k.split(".")[2] for k in t if k.startswith("encoder.")})
  for i in range(num_layers):
    p = f"encoder.layer.{i}."
    q = heads(_dense(t, p + "attention.self.query", x))
    k = heads(_dense(t, p + "attention.self.key", x))
    v = heads(_dense(t, p + "attention.self.value", x))
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_dim) + key_bias
    scores -= scores.max(-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(-1, keepdims=True)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
    attention = _dense(t, p + "attention.output.dense", context)
    x = _layer_norm(attention + x, t[p + "attention.output.LayerNorm.weight"],
                    t[p + "attention.output.LayerNorm.bias"])
    inner = gelu(_dense(t, p + "intermediate.dense", x), gelu_approximate)
    x = _layer_norm(_dense(t, p + "output.dense", inner) + x,
                    t[p + "output.LayerNorm.weight"],
                    t[p + "output.LayerNorm.bias"])
  pooled = np.tanh(_dense(t, "pooler.dense", x[:, 0]))
  return x, pooled
