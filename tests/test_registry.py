"""Registries: decorator registration, discovery, plugins from the user's own module, clear errors."""
from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from gfpgan.utils.options import import_user_modules
from gfpgan.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY, Registry


def test_register_get_and_list():
    reg = Registry('thing')

    @reg.register()
    class Foo:
        pass

    reg.register(len, name='length')
    assert reg.get('Foo') is Foo
    assert reg.get('length') is len
    assert reg.keys() == ['Foo', 'length']
    assert 'Foo' in reg and 'Bar' not in reg


def test_same_definition_twice_is_fine_different_one_fails_naming_both():
    reg = Registry('thing')

    def make():
        class Net:
            pass

        return Net

    first, second = make(), make()  # same module + qualname: what a re-import / reload produces
    reg.register(first)
    reg.register(second)
    assert reg.get('Net') is second

    class Net:  # a different definition under a taken name
        pass

    with pytest.raises(KeyError) as err:
        reg.register(Net)
    msg = str(err.value)
    assert 'make.<locals>.Net' in msg and 'test_same_definition_twice_is_fine_different_one_fails_naming_both' in msg


def test_unknown_name_lists_close_matches():
    with pytest.raises(KeyError) as err:
        ARCH_REGISTRY.get('ResidualCNNN')
    assert 'Did you mean: ResidualCNN' in str(err.value)


def test_package_modules_are_discovered():
    assert 'ResidualCNN' in ARCH_REGISTRY.keys()
    assert 'SamplePhotosDataset' in DATASET_REGISTRY.keys()
    assert 'RestorationModel' in MODEL_REGISTRY.keys()


def test_reimporting_the_package_does_not_fail():
    import gfpgan.archs.residual_cnn_arch as mod

    importlib.reload(mod)
    assert ARCH_REGISTRY.get('ResidualCNN') is mod.ResidualCNN


def test_user_module_next_to_option_file_registers(tmp_path):
    (tmp_path / 'my_archs_for_test.py').write_text(
        textwrap.dedent(
            """
            from torch import nn
            from gfpgan.utils.registry import ARCH_REGISTRY

            @ARCH_REGISTRY.register()
            class MyTinyNetForTest(nn.Module):
                def __init__(self, width=4):
                    super().__init__()
                    self.conv = nn.Conv2d(3, width, 1)
            """
        )
    )
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'plugin_by_path.py').write_text(
        'from gfpgan.utils.registry import ARCH_REGISTRY\n'
        '@ARCH_REGISTRY.register()\n'
        'def plugin_by_path_net(width=2):\n'
        '    return width\n'
    )
    try:
        import_user_modules(['my_archs_for_test', 'sub/plugin_by_path.py'], tmp_path)
        from gfpgan.archs import build_network

        net = build_network({'type': 'MyTinyNetForTest', 'width': 5})
        assert net.conv.out_channels == 5
        assert build_network({'type': 'plugin_by_path_net', 'width': 7}) == 7
        import_user_modules(['my_archs_for_test'], tmp_path)  # twice: no "already registered"
    finally:
        sys.modules.pop('my_archs_for_test', None)
        if str(tmp_path) in sys.path:
            sys.path.remove(str(tmp_path))


def test_missing_user_module_error_names_it(tmp_path):
    from gfpgan.utils.options import OptionError

    with pytest.raises(OptionError, match="module 'no_such_module_xyz' was not found"):
        import_user_modules(['no_such_module_xyz'], tmp_path)
    with pytest.raises(OptionError, match='missing.py'):
        import_user_modules(['missing.py'], tmp_path)
