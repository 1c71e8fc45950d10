"""What the tests (and the benchmarks, the screenshot script) share and the pack itself never runs: importing the
pack as `longcat_pack`, the browser driver, the fake-tensor memory count, random models and LoRAs in memory,
header-only readers of model files."""
