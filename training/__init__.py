"""The `textclf` command line: train, evaluate, predict (and `serve`, from the service package)."""
