import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
value = worker.job["inputs"]["value"]

table = worker.working_dir.path / "types.csv"
table.write_text(f"value\n{value}\n")

worker.finish(
    {
        "value_int": value,
        "value_float": value / 2,
        "value_string": f"value {value}",
        "value_bool": value > 0,
        "value_entity": worker.create_output_entity(f"types-{value}", f"Types {value}"),
        "value_csv": worker.create_output_csv(table),
        "value_bitmap": None,
        "value_chartreport": None,
        "value_chartreportconfig": None,
        "value_contours": None,
        "value_foreignfile": None,
        "value_giresult": None,
        "value_htmldocument": None,
        "value_image": None,
        "value_imagepairlist": None,
        "value_imagevoi": None,
        "value_mesh": None,
        "value_folder": None,
    }
)
