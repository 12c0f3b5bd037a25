import pytest


def pytest_collection_modifyitems(items):
    # everything here starts processes (torchrun) or runs a recipe: marked, still run by default
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
