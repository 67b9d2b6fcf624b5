"""The experiment file: its schema, safe YAML loading, ``--set`` overrides, and one-line
errors that name the file, the line, the key path, the bad value and what was expected.

``schema`` (the pydantic models and the JSON Schema), made by ``declared`` from the
engine's declarations of its options; ``yaml_text`` (reading YAML safely), ``messages``
(error lines), ``overrides`` (``--set``), ``bases`` (a file that builds on others:
``base``), ``loading`` (:func:`load_config`,
:func:`validate`), ``diff`` (comparing configs) and ``reference`` (the README's table of
options).
"""

from .diff import differing_keys, flatten
from .loading import check_data_files, load_config, validate
from .overrides import apply_override, parse_override
from .schema import SCHEMA_URL_COMMENT, ExperimentConfig, config_digest, json_schema
from .yaml_text import check_plain_data, load_raw, parse_yaml, safe_load

__all__ = ["SCHEMA_URL_COMMENT", "ExperimentConfig", "apply_override", "check_data_files",
           "check_plain_data", "config_digest", "differing_keys", "flatten", "json_schema",
           "load_config", "load_raw", "parse_override", "parse_yaml", "safe_load", "validate"]
