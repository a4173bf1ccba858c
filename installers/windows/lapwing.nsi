; Lapwing for Windows: a per-machine installer built on Linux by Debian's makensis, with no
; download and no plugin beyond NSIS's own (Tauri's NSIS bundling fetches its plugins from
; GitHub). cargo xtask windows builds it:
;   makensis -DVERSION=<x.y.z> -DBIN_DIR=<dir> -DOUT_FILE=<installer.exe> lapwing.nsi
; where <dir> holds lapwing.exe, WebView2Loader.dll (which a windows-gnu build of the tray app
; loads at start; webview2-com-sys ships it) and lapctl.exe
; and runs it silently (/S) under Wine, checks what it placed and uninstalls it.
;
; What it places (and what removal keeps) is in installers/windows/README.md.

Unicode true
Target amd64-unicode
RequestExecutionLevel admin
; The release build's compression; the test build (cargo xtask windows, from debug binaries)
; passes -DCOMPRESSOR=zlib, a fraction of LZMA's time on 90 MB of debug programs.
!ifndef COMPRESSOR
  !define COMPRESSOR "/SOLID lzma"
!endif
SetCompressor ${COMPRESSOR}
ManifestSupportedOS all

!ifndef VERSION
  !error "define VERSION"
!endif
!ifndef BIN_DIR
  !error "define BIN_DIR"
!endif
!ifndef OUT_FILE
  !error "define OUT_FILE"
!endif

!include "LogicLib.nsh"
!include "StrFunc.nsh"
!include "WinMessages.nsh"
${StrStr}
${UnStrRep}

!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Lapwing"
!define ENVIRONMENT_KEY "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"

Name "Lapwing ${VERSION}"
OutFile "${OUT_FILE}"
InstallDir "$PROGRAMFILES64\Lapwing"
ShowInstDetails show

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Function .onInit
  SetShellVarContext all
  SetRegView 64
FunctionEnd

Function un.onInit
  SetShellVarContext all
  SetRegView 64
FunctionEnd

; A running tray app holds its files open, and Windows cannot replace or delete an open
; program: it is ended first (its state is always written atomically, so nothing is lost;
; each user's next login starts it again).
!macro EndTrayApps
  nsExec::Exec '"$SYSDIR\taskkill.exe" /F /IM lapwing.exe'
  Pop $0
!macroend

; Creates DIR and sets its access list: inheritance off, Administrators and SYSTEM full
; control, Users read, for the folder and what is created in it; and its owner,
; Administrators, in case a user made it first. Stops the installation if either fails.
!macro RestrictToAdministrators DIR
  CreateDirectory "${DIR}"
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${DIR}" /setowner *S-1-5-32-544 /T'
  Pop $0
  ${If} $0 == 0
    nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${DIR}" /inheritance:r /grant:r *S-1-5-32-544:(OI)(CI)F *S-1-5-18:(OI)(CI)F *S-1-5-32-545:(OI)(CI)RX'
    Pop $0
  ${EndIf}
  ${If} $0 != 0
    DetailPrint "icacls could not restrict ${DIR} (exit $0)"
    SetErrorLevel 3
    Abort "${DIR} could not be restricted to administrators."
  ${EndIf}
!macroend

Section "Lapwing"
  !insertmacro EndTrayApps
  SetOutPath "$INSTDIR"
  File "${BIN_DIR}\lapwing.exe"
  File "${BIN_DIR}\WebView2Loader.dll"
  File "${BIN_DIR}\lapctl.exe"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; The products folder vendors' installers drop manifests into, and Lapwing's own machine
  ; folder (the machine policy, the anchor file). Lapwing trusts what is in them (server keys,
  ; addresses, the policy that may lock the server), refuses them when anyone but
  ; administrators may write them, and a user may create folders in %ProgramData%: so the
  ; installer creates both and gives them to Administrators and SYSTEM; users read.
  ; ($APPDATA is %ProgramData% for all users.)
  !insertmacro RestrictToAdministrators "$APPDATA\LAP\products.d"
  !insertmacro RestrictToAdministrators "$APPDATA\Lapwing"

  ; lapctl on every user's PATH (the system Path, once).
  ReadRegStr $1 HKLM "${ENVIRONMENT_KEY}" "Path"
  ${StrStr} $2 "$1;" "$INSTDIR;"
  ${If} $2 == ""
    ${If} $1 == ""
      WriteRegExpandStr HKLM "${ENVIRONMENT_KEY}" "Path" "$INSTDIR"
    ${Else}
      WriteRegExpandStr HKLM "${ENVIRONMENT_KEY}" "Path" "$1;$INSTDIR"
    ${EndIf}
    SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=1000
  ${EndIf}

  CreateDirectory "$SMPROGRAMS\Lapwing"
  CreateShortCut "$SMPROGRAMS\Lapwing\Lapwing.lnk" "$INSTDIR\lapwing.exe"
  CreateShortCut "$SMPROGRAMS\Lapwing\Uninstall Lapwing.lnk" "$INSTDIR\uninstall.exe"

  ; The tray at login for every user who has not chosen yet. The app's own "Start at login"
  ; switch manages the user's HKCU Run value and leaves a marker; from then on this entry
  ; steps aside (lapwing.exe --login-default ends at once), so off stays off.
  WriteRegStr HKLM "${RUN_KEY}" "Lapwing" '"$INSTDIR\lapwing.exe" --login-default'

  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "Lapwing"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "Lapwing"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\lapwing.exe"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  !insertmacro EndTrayApps
  DeleteRegValue HKLM "${RUN_KEY}" "Lapwing"
  Delete "$INSTDIR\lapwing.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\lapctl.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\Lapwing\Lapwing.lnk"
  Delete "$SMPROGRAMS\Lapwing\Uninstall Lapwing.lnk"
  RMDir "$SMPROGRAMS\Lapwing"

  ReadRegStr $1 HKLM "${ENVIRONMENT_KEY}" "Path"
  ${UnStrRep} $2 "$1" ";$INSTDIR" ""
  ${UnStrRep} $2 "$2" "$INSTDIR" ""
  ${If} $2 != $1
    WriteRegExpandStr HKLM "${ENVIRONMENT_KEY}" "Path" "$2"
    SendMessage ${HWND_BROADCAST} ${WM_SETTINGCHANGE} 0 "STR:Environment" /TIMEOUT=1000
  ${EndIf}

  DeleteRegKey HKLM "${UNINSTALL_KEY}"
  ; Kept: %ProgramData%\LAP\products.d (other vendors' manifests), each user's
  ; %LOCALAPPDATA%\lapwing, %APPDATA%\com.lapwing.tray, Credential Manager items and HKCU Run
  ; value (which names a program no longer there, so Windows skips it).
SectionEnd
