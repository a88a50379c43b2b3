"""The input contract as code: header aliases, vocabularies, reference data, pandera models."""
