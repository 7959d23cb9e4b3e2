import json

import network
import xfworkerutil

worker = xfworkerutil.XFWorkerJob()
folder_parameter = worker.job["inputs"]["folder"]
folders = []


def search_folder_recursively(folder_virtualpath):
    scopes = [("list", folder_virtualpath)]
    with worker.server_connection() as connection:
        list_dir_token = xfworkerutil.get_xf_userdata_token(connection, scopes)
    file_items, folder_items = network.list_files_and_folders_on_filestorage(list_dir_token)

    for item in file_items:
        item["virtualpath"] = network.virtualpath_join_file(folder_virtualpath, item["name"])

    for folder_item in folder_items:
        subfolder_virtualpath = network.virtualpath_join_folder(
            folder_virtualpath, folder_item["virtual_name"]
        )
        folders.append(subfolder_virtualpath)
        file_items += search_folder_recursively(subfolder_virtualpath)

    return file_items


file_items = search_folder_recursively(folder_parameter["virtualpath"])
files = sorted([item["virtualpath"], item["size"]] for item in file_items)
dirnames = sorted(network.get_virtualpath_dirname(item["virtualpath"]) for item in file_items)

first = min(file_items, key=lambda item: item["virtualpath"])
file_parameter = dict(
    type="ForeignFile", source="userdata", virtualpath=first["virtualpath"], filename=first["name"]
)
content = worker.download_input_file(file_parameter).read_text()

worker.finish(
    {
        "files": json.dumps(files),
        "folders": json.dumps(sorted(folders)),
        "dirnames": json.dumps(dirnames),
        "first_file": content,
    }
)
