"""The machine-speed probe (bench/machine_speed.py) times a fixed amount of work."""

from bench import machine_speed


def test_probe_times_the_first_texts_only(monkeypatch):
    monkeypatch.setattr(machine_speed, "PROBE_TEXTS", 3)
    monkeypatch.setattr(machine_speed, "PYTHON_LOOP", 1000)
    seen: list[int] = []
    real_insert = machine_speed._fts5_insert

    def counting_insert(texts):
        seen.append(len(texts))
        return real_insert(texts)

    monkeypatch.setattr(machine_speed, "_fts5_insert", counting_insert)

    result = machine_speed.probe(["Large Language Models", "Video Diffusion", "RL", "unused"])

    assert result["texts"] == 3
    assert seen == [3, 3]  # the best of two runs over the same three texts
    assert result["fts5_us_per_text"] > 0 and result["python_ns_per_loop"] > 0
