"""`python -m digest`: the same program as the `digest` console script."""

from digest.cli import main

if __name__ == "__main__":
    main()
