"""`python run_classifier.py --flags`, as with Google BERT's script: the
classifier driver keras_adapters/cli/run_classifier.py, installed as the
`keras-adapters-classifier` command."""

from keras_adapters.cli.run_classifier import entry_point

if __name__ == "__main__":
  entry_point()
