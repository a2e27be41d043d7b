"""The project's licence and citation are declared consistently: LICENSE, setup.py, CITATION.cff and the README."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
    with open(os.path.join(ROOT, name), encoding='utf-8') as f:
        return f.read()


def test_license_is_apache_2_everywhere_it_is_declared():
    assert _read('LICENSE').split()[:4] == ['Apache', 'License', 'Version', '2.0,']
    assert "license='Apache-2.0'" in _read('setup.py')
    assert re.search(r'^license: Apache-2\.0$', _read('CITATION.cff'), re.MULTILINE)


def test_citation_names_the_squeeze_paper_as_the_readme_does():
    citation, readme = _read('CITATION.cff'), _read('README.md')
    doi = re.search(r'^  doi: "([^"]+)"$', citation, re.MULTILINE).group(1)
    arxiv = re.search(r'value: "arXiv:([0-9.]+)"', citation).group(1)
    assert f'doi:{doi}' in readme and f'arXiv:{arxiv}' in readme
    assert 'title: "Rethinking Image Skip Connections in StyleGAN2"' in citation
