from runyard import task

task.fail("Number jobs are created with their output by 'runyard run new'; nothing to run")
