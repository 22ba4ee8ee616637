"""The web front end, `caec serve` (docs/web.md): a Starlette app (cae_codec.web.app) on
uvicorn, whose page (static/, plain HTML, CSS and JavaScript, nothing fetched from elsewhere)
compares the registered and classic codecs on an image, decodes .cae files and codes MNIST
digits; the work runs in a bounded pool (cae_codec.web.pool) through the library
(cae_codec.web.work)."""
