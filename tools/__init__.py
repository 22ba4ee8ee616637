"""Scripts that `make` targets and the standing record run (bench, fuzz, huge images, the model card table).

Each has `main(argv) -> int` and its own tests in tests/; none is imported by the product.
"""
