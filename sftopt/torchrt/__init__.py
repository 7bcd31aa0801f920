"""The torch runtime pieces every torch user shares (calibration, the executor): the staged
model (real MiniLM weights or random ones from a config) and the one LoRA implementation.
Imported only by code that needs torch."""
