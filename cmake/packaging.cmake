# SPDX-License-Identifier: Apache-2.0
# Packaging: the catalogue and a first config beside the example config, and a .deb (cpack -G DEB)
# that creates the `labwatch` system user and /var/lib/labwatch/{inbox,processed,failed}.
include(GNUInstallDirs)

install(FILES ${PROJECT_SOURCE_DIR}/clinical/analytes.csv DESTINATION ${CMAKE_INSTALL_DATADIR}/labwatch)
# /etc/labwatch/labwatch.xml, a conffile of the package (packaging/deb/conffiles): dpkg keeps an
# admin's edits across upgrades. postinst gives it to group labwatch, mode 0640.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/labwatch.xml DESTINATION /etc/labwatch)
# Debian wants a copyright file and a changelog (gzip -9n) in /usr/share/doc/PACKAGE.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/doc/copyright
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/labwatch)
set(labwatch_changelog ${CMAKE_CURRENT_BINARY_DIR}/doc/changelog.gz)
add_custom_command(OUTPUT ${labwatch_changelog}
                   COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/doc
                   COMMAND sh -c "gzip -9nc '${PROJECT_SOURCE_DIR}/packaging/doc/changelog' > '${labwatch_changelog}'"
                   DEPENDS ${PROJECT_SOURCE_DIR}/packaging/doc/changelog VERBATIM)
add_custom_target(labwatch_changelog ALL DEPENDS ${labwatch_changelog})
install(FILES ${labwatch_changelog} DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/labwatch)

# Hardening as Debian links its binaries: PIE (the compiler's default, said here) and an
# immediately bound, read-only relocation table.
target_link_options(labwatch PRIVATE -pie -Wl,-z,relro -Wl,-z,now)

# Manual pages, compressed as Debian policy asks (gzip -9n: no name or time stamp inside), and the
# bash completion.
set(labwatch_man_pages ${PROJECT_SOURCE_DIR}/packaging/man/labwatch.1
                       ${PROJECT_SOURCE_DIR}/packaging/man/labwatch.xml.5)
set(labwatch_man_outputs)
foreach(page IN LISTS labwatch_man_pages)
  get_filename_component(name ${page} NAME)
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${name})
  set(output ${CMAKE_CURRENT_BINARY_DIR}/man/${name}.gz)
  add_custom_command(OUTPUT ${output}
                     COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
                     COMMAND sh -c "gzip -9nc '${page}' > '${output}'"
                     DEPENDS ${page} VERBATIM)
  list(APPEND labwatch_man_outputs ${output})
  install(FILES ${output} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(labwatch_man ALL DEPENDS ${labwatch_man_outputs})
install(FILES ${PROJECT_SOURCE_DIR}/packaging/bash-completion/labwatch
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME labwatch)
set(CPACK_PACKAGE_VENDOR labwatch)
set(CPACK_PACKAGE_CONTACT "labwatch maintainers <maintainers@labwatch.example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "lab-result ingestion daemon (HL7 v2 and CSV to SQLite, optimal-range alerts)")
set(CPACK_PACKAGE_DESCRIPTION
    "labwatch watches an inbox folder for lab-result exports (HL7 v2 ORU^R01,
CSV), stores every result in SQLite with its canonical analyte and unit, and
mails practitioners when a value falls outside its optimal target.")
# The unit's ExecStart= names /usr/bin/labwatch.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
    ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
    ${PROJECT_SOURCE_DIR}/packaging/deb/postrm
    ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# Debug info stays in the build tree; the package ships a stripped binary.
set(CPACK_STRIP_FILES ON)
include(CPack)
