"""`python run_squad.py --flags`, as with Google BERT's script: the
SQuAD driver keras_adapters/cli/run_squad.py, installed as the
`keras-adapters-squad` command."""

from keras_adapters.cli.run_squad import entry_point

if __name__ == "__main__":
  entry_point()
