"""Evaluation against classic codecs: ``caec compare`` and ``caec bdrate``.

metrics (bpp, PSNR-RGB, MS-SSIM-RGB), classic (imagecodecs codecs), learned (caec itself),
ratesearch (hit a target rate without exceeding it), bdrate (Bjøntegaard), datasets
(Kodak and image folders), runner (the process pool), curves (CompressAI's JSON schema),
plot and report (RD plot, crop sheets, tables, markdown), cli (the Typer commands).
"""
