# orc's pytest plugin (markers `gpu`/`slow`, GPU skip logic) is registered through its
# entry point when orc is pip-installed; this line covers in-place builds too.
pytest_plugins = ["orc.pytest_plugin"]
