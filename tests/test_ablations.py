from wala.ablations.autoencoder import format_ae_ablation, run_ae_ablation


def test_ae_ablation_runs_every_row_of_table_1(tmp_path):
    rows = run_ae_ablation(
        tmp_path,
        resolution=32,
        base_steps=4,
        finetune_steps=2,
        sizes=(2, 3),
        train_mix=["procedural:chair:4", "procedural:ring:1"],
        eval_mix=["procedural:chair,ring:1:1000"],
    )
    assert [(r["loss"], r["finetune"]) for r in rows] == [
        ("mse", None),
        ("adaptive", None),
        ("adaptive", "-"),
        ("adaptive", 2),
        ("adaptive", 3),
    ]
    for r in rows:
        assert 0 <= r["iou"] <= 1 and 0 <= r["d_iou"] <= 1 and r["mse"] >= 0
    assert len({r["checkpoint"] for r in rows}) == 5
    table = format_ae_ablation(rows)
    assert "D-IoU" in table and len(table.splitlines()) == 6
    assert (tmp_path / "ablation_ae.json").is_file()
