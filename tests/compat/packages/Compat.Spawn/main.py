# Spawning new runs as the XamFlow documentation's Lucid.Util.SearchFolderFilesBySuffix does:
# for each item a select job created Obsolete (so that it does not create followers yet), an
# add job joined to its run, then the select job updated to Done.
import logging
import uuid

import xfsortorder
import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
count = worker.job["inputs"]["count"]
serial = worker.job["serial"]

select_task_type_name = "Compat.Source"
add_task_type_name = "Compat.Added"
add_task_input_template_name = "value_template"

with worker.server_connection() as connection:
    select_task_type, *old_select_task_types = worker.find_xf_task_types(
        connection, select_task_type_name
    )
    select_task = worker.spawn_xf_task_basic(
        connection, select_task_type, "Found", spawn_key="found", inputs=[]
    )
    add_task_type, *old_add_task_types = worker.find_xf_task_types(connection, add_task_type_name)
    add_task = worker.spawn_xf_task_basic(
        connection,
        add_task_type,
        "Added",
        spawn_key="added",
        inputs=[{"key": add_task_input_template_name, "source": {"mode": "none"}}],
    )

    existing_sort_orders = worker.get_existing_job_sort_orders(connection)
    new_sort_orders = xfsortorder.get_new_source_job_sort_orders(existing_sort_orders, count)

    for i in range(count):
        name = f"spawned {count}.{i}"
        logging.info(f"Spawning run for {name}")
        metadata = {}
        metadata["run_display_name"] = name
        metadata["display_name"] = name
        metadata["run_entity"] = worker.create_output_entity(str(uuid.uuid4()), name)
        select_job = worker.spawn_xf_job_basic(
            connection,
            select_task_type,
            select_task,
            outputs={"value": i + 1},
            state="Obsolete",
            sort_order=new_sort_orders[i],
            metadata=metadata,
        )
        add_task_inputs = {add_task_input_template_name: None}
        worker.spawn_xf_job_basic(
            connection,
            add_task_type,
            add_task,
            source_job_serial=select_job["serial"],
            inputs=add_task_inputs,
            outputs={"value": 100 + i},
        )
        # Finish the source job (created Obsolete to avoid auto-creating follower jobs)
        xfworkerutil.update_xf_job(connection, select_job, state="Done")

worker.finish({"spawned": count, "select_versions": 1 + len(old_select_task_types)})
