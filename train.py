"""Train the Pixel Transformer: ``python train.py`` (``--help`` lists the options)."""

from lpm.train import main

if __name__ == "__main__":
    main()
