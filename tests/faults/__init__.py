"""The fault suite: damaged files, hostile input, kill -9 and the regressions of issue 12."""
