package dn_test

import (
	"encoding/hex"
	"fmt"

	"github.com/certbind/certbind/policy/dn"
)

func Example() {
	// At configuration load: the client's tls_client_auth_subject_dn.
	registered, err := dn.Parse("cn=Client-1, OU=Eng, O=Example  Corp, C=US")
	if err != nil {
		fmt.Println(err)
		return
	}

	// Per request: the presented certificate's cert.RawSubject.
	rawSubject, _ := hex.DecodeString("3045310b300906035504061302555331153013060355040a0c0c4578616d706c6520436f7270310c300a060355040b0c03456e673111300f06035504030c08636c69656e742d31")
	subject, err := dn.FromDER(rawSubject)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(subject)
	fmt.Println(registered.Equal(subject))

	_, err = dn.Parse("/C=US/O=Example Corp/OU=Eng/CN=client-1")
	fmt.Println(err)
	// Output:
	// CN=client-1,OU=Eng,O=Example Corp,C=US
	// true
	// dn: position 0: OpenSSL slash form (/C=US/O=...) is not RFC 4514; write the RDNs most specific first, separated by ',' (CN=...,O=...,C=US)
}
