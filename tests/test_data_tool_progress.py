"""dataset_tool.py progress: images converted of the expected total on stderr, in a bounded number of lines."""

from tests import data_helpers as dh


def test_conversion_reports_images_done_of_the_total_in_few_lines(tmp_path):
    dh.make_image_folder(str(tmp_path / 'src'), 25)
    result = dh.run_tool('--source', tmp_path / 'src', '--dest', tmp_path / 'out.zip')
    assert result.exit_code == 0, result.output
    progress = result.stderr.splitlines()
    assert 1 <= len(progress) <= 11 and all(line.startswith('Converting  ') for line in progress)
    assert progress[-1].startswith('Converting  25/25 (100%)') and 'images/s' in progress[-1]
    assert 'done in' in progress[-1]
    assert 'Converting' not in result.stdout


def test_max_images_is_the_expected_total(tmp_path):
    dh.make_image_folder(str(tmp_path / 'src'), 12)
    result = dh.run_tool('--source', tmp_path / 'src', '--dest', tmp_path / 'out', '--max-images', 5)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1].startswith('Converting  5/5 (100%)')


def test_a_failed_conversion_prints_no_final_progress_line(tmp_path):
    dh.make_image_folder(str(tmp_path / 'src'), 4)
    (tmp_path / 'src' / 'img2.png').write_bytes(b'not an image')
    result = dh.run_tool('--source', tmp_path / 'src', '--dest', tmp_path / 'out.zip')
    dh.assert_clean_failure(result, 'img2.png')
    assert 'done in' not in result.stderr
