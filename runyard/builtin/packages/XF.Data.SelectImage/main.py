from runyard import task

# Jobs of this task are created with their outputs: by spawning, by 'runyard run new', or by
# a user in the UI. A worker never has anything to compute for one.
task.fail(
    "XF.Data.SelectImage jobs are created with their outputs "
    "(by spawning or 'runyard run new'); there is nothing to run"
)
