from runyard.builtin import images

images.study_table_main()
