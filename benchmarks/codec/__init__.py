"""Benchmarks of sftopt.codec: size vs entropy bound, distortion, throughput, baselines."""
