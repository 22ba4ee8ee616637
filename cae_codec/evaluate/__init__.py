"""Evaluation against classic codecs: ``caec compare`` and ``caec bdrate``.

metrics (bpp, PSNR-RGB, MS-SSIM-RGB), classic (imagecodecs codecs), learned (caec itself),
bdrate (Bjøntegaard), datasets
(Kodak and image folders), runner (the process pool), curves (CompressAI's JSON schema),
plot and report (RD plot, crop sheets, tables, markdown), cli (the Typer commands). The rate
search every codec shares, encoding and evaluating alike, is cae_codec.ratecontrol.
"""
