"""Executes a notebook top to bottom with a real Jupyter kernel (nbclient)
and saves it with its outputs, from its own folder so relative paths hold.

  python notebooks/execute.py notebooks/adapter_tuning.ipynb [--out PATH]
"""

import argparse
import os

import nbclient
import nbformat


def execute(path, out=None, timeout=1800, cwd=None):
  """Runs every cell; returns the executed notebook (raises on an error)."""
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(
      nb, timeout=timeout, kernel_name="python3",
      resources={"metadata": {"path": cwd or os.path.dirname(
          os.path.abspath(path))}})
  client.execute()
  if out:
    nbformat.write(nb, out)
  return nb


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("notebook")
  parser.add_argument("--out", help="where to save (default: in place)")
  args = parser.parse_args()
  execute(args.notebook, args.out or args.notebook)


if __name__ == "__main__":
  main()
