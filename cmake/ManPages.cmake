# Man pages for the five programs, made by help2man from each program's own
# --help and --version, which are printed from its settings table: a man page
# cannot say anything the program does not. Installed with the programs by
# `cmake --install`, so `man sluice-worker` works afterwards.
#
# help2man is a build tool only (Debian's help2man; ./run deps installs it).
# Without it the programs still build and install, without man pages, and
# the man_pages test fails saying so.
include(GNUInstallDirs)

find_program(HELP2MAN help2man)

# sluice_man_page(TARGET "one-line description")
function(sluice_man_page target description)
  if(NOT HELP2MAN)
    return()
  endif()
  set(page ${CMAKE_BINARY_DIR}/man/${target}.1)
  add_custom_command(
    OUTPUT ${page}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    # ASAN_OPTIONS: a sanitizer build's leak check needs ptrace, which some
    # build sandboxes lack; --help and --version allocate nothing that leaks.
    COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0
            ${HELP2MAN} --no-info --section=1 --name=${description}
            --output=${page} $<TARGET_FILE:${target}>
    DEPENDS ${target}
    COMMENT "man page ${target}.1"
    VERBATIM)
  add_custom_target(${target}-man ALL DEPENDS ${page})
  install(FILES ${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endfunction()

if(NOT HELP2MAN)
  message(STATUS "help2man not found: no man pages (apt-get install help2man)")
endif()

foreach(entry
    "sluice-setup|declares the RabbitMQ topology and users and migrates the warehouse"
    "sluice-producer|publishes events from source adapters to RabbitMQ"
    "sluice-worker|stores events from RabbitMQ in the PostgreSQL warehouse"
    "sluice-notifier|delivers alerts to the log, webhooks and Telegram"
    "sluice-ctl|shows the state of a running sluice and replays or reprocesses what failed")
  string(REPLACE "|" ";" parts "${entry}")
  list(GET parts 0 program)
  list(GET parts 1 description)
  install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  sluice_man_page(${program} "${description}")
endforeach()

# The migrations and function files sluice-setup applies.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/sql/ DESTINATION ${CMAKE_INSTALL_DATADIR}/sluice/sql)
